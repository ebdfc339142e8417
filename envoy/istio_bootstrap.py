"""The stats part of the Envoy bootstrap that istio-agent renders for a
gateway pod, as a function of the pod's annotations and its ProxyConfig.

A model of Istio's own rendering (pilot's bootstrap options and its
envoy_bootstrap.json template, Istio 1.2x), written down so a test can start
real Envoy with exactly the stats configuration a stock mesh would give it,
from what istio/ ships. What it models:

- `stats_tags`: Istio's fixed tag rules, with one `(<tag>=\\.=(.*?);\\.;)` rule
  per extra stat tag (ProxyConfig.extraStatTags, then the
  `sidecar.istio.io/extraStatTags` annotation, duplicates dropped) inserted
  where the template has them; `use_all_default_tags` is false.
- `histogram_bucket_settings`: from the `sidecar.istio.io/statsHistogramBuckets`
  annotation (a JSON map of stat-name prefix to buckets), sorted by prefix;
  absent without it.
- `stats_matcher`: what Istio keeps: `reporter=`, the inclusion prefixes (the
  annotation's, else ProxyConfig's) plus the required ones (which include
  `wasm`), `component` and `istio`; the RBAC suffixes; the vhost route regex.
"""

from __future__ import annotations

import json

EXTRA_STAT_TAGS = "sidecar.istio.io/extraStatTags"
HISTOGRAM_BUCKETS = "sidecar.istio.io/statsHistogramBuckets"
INCLUSION_PREFIXES = "sidecar.istio.io/statsInclusionPrefixes"

# Kept by Istio whatever the admin says: readiness checks and Wasm stats.
REQUIRED_PREFIXES = ["cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm"]
RBAC_SUFFIXES = ["rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied"]
REQUIRED_REGEXES = [r"vhost\..*\.route\..*"]

# The template's fixed rules, before and after the extra stat tags.
TAGS_BEFORE = [
    ("cluster_name", r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix",
     r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("http_conn_manager_prefix", r"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("listener_address", r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("mongo_prefix", r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"),
]
TAGS_AFTER = [
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
]


def extra_stat_tags(annotations: dict, proxy_config: dict) -> list[str]:
    tags = [t for t in proxy_config.get("extraStatTags", []) if t]
    tags += [t for t in annotations.get(EXTRA_STAT_TAGS, "").split(",") if t]
    return list(dict.fromkeys(tags))


def stats_config(annotations: dict, proxy_config: dict | None = None) -> dict:
    """The bootstrap's `stats_config` for a pod with these annotations."""
    proxy_config = proxy_config or {}
    extra = [(tag, rf"({tag}=\.=(.*?);\.;)") for tag in extra_stat_tags(annotations, proxy_config)]
    config: dict = {
        "use_all_default_tags": False,
        "stats_tags": [{"tag_name": name, "regex": regex} for name, regex in TAGS_BEFORE + extra + TAGS_AFTER],
    }
    if HISTOGRAM_BUCKETS in annotations:
        buckets = json.loads(annotations[HISTOGRAM_BUCKETS])
        config["histogram_bucket_settings"] = [
            {"match": {"prefix": prefix}, "buckets": buckets[prefix]} for prefix in sorted(buckets)]
    matcher = proxy_config.get("proxyStatsMatcher", {})
    prefixes = annotations[INCLUSION_PREFIXES].split(",") if annotations.get(INCLUSION_PREFIXES) \
        else list(matcher.get("inclusionPrefixes", []))
    patterns = [{"prefix": p} for p in ["reporter=", *prefixes, *REQUIRED_PREFIXES]]
    patterns += [{"suffix": s} for s in [*matcher.get("inclusionSuffixes", []), *RBAC_SUFFIXES]]
    patterns += [{"safe_regex": {"regex": r}} for r in [*matcher.get("inclusionRegexps", []), *REQUIRED_REGEXES]]
    patterns += [{"prefix": "component"}, {"prefix": "istio"}]
    config["stats_matcher"] = {"inclusion_list": {"patterns": patterns}}
    return config
