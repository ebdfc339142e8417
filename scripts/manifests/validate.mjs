#!/usr/bin/env node
// Validates Kubernetes manifests offline against the published schemas:
// Istio's CRDs (@kubernetes-models/istio), the Prometheus Operator's CRDs
// (@kubernetes-models/prometheus-operator) and Kubernetes' own API
// (kubernetes-models), pinned in package.json / package-lock.json here.
//
//   npm ci --prefix scripts/manifests          # once; node_modules is git-ignored
//   node scripts/manifests/validate.mjs istio  # the resources of istio/kustomization.yaml
//   node scripts/manifests/validate.mjs [--json] FILE_OR_DIR...
//
// Each YAML document is checked twice:
//  1. the package's own validator (`new WasmPlugin(doc).validate()`): types,
//     enums, required fields, patterns, formats (not the CRDs' CEL rules,
//     x-kubernetes-validations, which only an API server evaluates);
//  2. unknown fields, which those schemas let through (CRD schemas carry no
//     `additionalProperties: false`; an API server prunes unknown fields, or
//     refuses them under kubectl's default --validate=strict). The same validator is run
//     on a Proxy that records which keys it reads: ajv's generated code reads
//     every property a schema declares (and every key of a map it checks), so
//     a key of an object that the validator read other keys of, but never
//     this one, is a field the schema does not know: refused. An object none
//     of whose keys the validator reads is free-form in the schema
//     (x-kubernetes-preserve-unknown-fields, like WasmPlugin.spec.pluginConfig
//     or EnvoyFilter patch values) and is left alone, as Kubernetes does.
// Exit status: 0 when every document passes, 1 when one fails, 2 on misuse.

import { readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";

// API group -> the package that carries its schemas.
function packageFor(group) {
  if (group === "istio.io" || group.endsWith(".istio.io")) return "@kubernetes-models/istio";
  if (group === "monitoring.coreos.com") return "@kubernetes-models/prometheus-operator";
  if (group === "" || group.endsWith(".k8s.io") || !group.includes(".")) return "kubernetes-models";
  return null;
}

async function modelClass(apiVersion, kind) {
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  if (!/^[a-z0-9.-]*$/.test(group) || !/^v[a-z0-9]+$/.test(version) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return { error: `not a valid apiVersion/kind: ${apiVersion} ${kind}` };
  }
  const pkg = packageFor(group);
  if (!pkg) return { error: `no schema is bundled for API group ${group} (${apiVersion} ${kind})` };
  const spec = `${pkg}/${group ? `${group}/` : ""}${version}/${kind}`;
  try {
    const mod = await import(spec);
    const cls = mod[kind];
    if (typeof cls === "function" && cls.apiVersion === apiVersion && cls.kind === kind) return { cls };
  } catch (err) {
    if (err?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
  }
  return { error: `unknown apiVersion/kind: ${apiVersion} ${kind} (not in ${pkg})` };
}

// "spec.keys.pem[0].kid" from a list of keys.
function fieldPath(parts) {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number" || /^\d+$/.test(p)) out += `[${p}]`;
    else if (/^[A-Za-z_$@][\w$@-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out || "(document)";
}

function pointerParts(instancePath) {
  return instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function describeSchemaError(e, root) {
  const parts = pointerParts(e.instancePath);
  let message = e.message;
  if (e.keyword === "enum") message += ` (${e.params.allowedValues.join(", ")})`;
  if (e.keyword === "type" && e.params.type === "string") {
    const value = parts.reduce((node, key) => node?.[key], root);
    if (typeof value === "boolean") message += " (YAML reads yes/no/on/off/y/n/true/false as booleans: quote it)";
  }
  if (e.keyword === "additionalProperties") {
    parts.push(e.params.additionalProperty);
    message = "unknown field";
  }
  return { field: fieldPath(parts), message };
}

// Runs `validate` on a Proxy of `root` that records, per object, the keys
// the validator read.
function traceValidation(validate, root) {
  const reads = new WeakMap();
  const proxies = new WeakMap();
  const wrap = (value) => {
    if (value === null || typeof value !== "object") return value;
    let proxy = proxies.get(value);
    if (!proxy) {
      const seen = new Set();
      reads.set(value, seen);
      proxy = new Proxy(value, {
        get(target, key, receiver) {
          if (typeof key === "string") seen.add(key);
          return wrap(Reflect.get(target, key, receiver));
        },
        has(target, key) {
          if (typeof key === "string") seen.add(key);
          return Reflect.has(target, key);
        },
      });
      proxies.set(value, proxy);
    }
    return proxy;
  };
  let errors = [];
  try {
    validate.call(wrap(root));
  } catch (err) {
    if (!Array.isArray(err?.errors)) throw err;
    errors = err.errors;
  }
  return { errors, reads };
}

function unknownFields(node, reads, parts, out) {
  if (node === null || typeof node !== "object") return;
  if (Array.isArray(node)) {
    node.forEach((item, i) => unknownFields(item, reads, [...parts, i], out));
    return;
  }
  const seen = reads.get(node);
  if (!seen || seen.size === 0) return; // not reached, or free-form
  for (const key of Object.keys(node)) {
    if (seen.has(key)) unknownFields(node[key], reads, [...parts, key], out);
    else out.push({ field: fieldPath([...parts, key]), message: "unknown field (not in the schema)" });
  }
}

// `partial`: a strategic-merge patch, not a whole object: fields the schema
// requires may be missing; everything present is still checked.
export async function validateDocument(doc, { partial = false } = {}) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { problems: [{ field: "(document)", message: "not a mapping" }] };
  }
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return { problems: [{ field: "(document)", message: "no apiVersion and kind: not a Kubernetes manifest" }] };
  }
  const { cls, error } = await modelClass(apiVersion, kind);
  const name = doc.metadata?.name;
  if (!cls) return { apiVersion, kind, name, problems: [{ field: "apiVersion", message: error }] };
  const model = new cls(doc);
  const { errors, reads } = traceValidation(cls.prototype.validate, model);
  const problems = errors.filter((e) => !(partial && e.keyword === "required")).map((e) => describeSchemaError(e, model));
  unknownFields(model, reads, [], problems);
  if (typeof name !== "string" || name === "") {
    problems.push({ field: "metadata.name", message: "required: every Kubernetes object has a name" });
  }
  return { apiVersion, kind, name, problems };
}

// The resources a kustomization lists, as paths.
function kustomizationResources(dir) {
  const file = path.join(dir, "kustomization.yaml");
  const kustomization = parseAllDocuments(readFileSync(file, "utf8"))[0]?.toJS() ?? {};
  const resources = kustomization.resources ?? [];
  if (!Array.isArray(resources) || resources.length === 0) {
    throw new Error(`${file}: lists no resources`);
  }
  return resources.map((r) => path.join(dir, String(r)));
}

export async function validateFile(file, options = {}) {
  const results = [];
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return [{ file, doc: 0, problems: [{ field: "(file)", message: err.message }] }];
  }
  // YAML 1.1, as Kubernetes' parser reads it (yes/no/on/off are booleans);
  // duplicate keys are errors, as under kubectl's strict validation.
  const docs = parseAllDocuments(text, { version: "1.1", uniqueKeys: true, prettyErrors: true });
  let index = 0;
  for (const d of docs) {
    index += 1;
    const errs = d.errors ?? [];
    if (errs.length) {
      results.push({ file, doc: index, problems: errs.map((e) => ({ field: "(yaml)", message: e.message })) });
      continue;
    }
    const value = d.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // empty document
    results.push({ file, doc: index, ...(await validateDocument(value, options)) });
  }
  if (results.length === 0) results.push({ file, doc: 0, problems: [{ field: "(file)", message: "no documents" }] });
  return results;
}

async function main(argv) {
  const json = argv.includes("--json");
  const partial = argv.includes("--partial");
  const args = argv.filter((a) => a !== "--json" && a !== "--partial");
  if (args.length === 0 || args.some((a) => a.startsWith("-"))) {
    process.stderr.write(
      "usage: validate.mjs [--json] [--partial] FILE_OR_KUSTOMIZATION_DIR...\n" +
        "  a directory stands for the resources its kustomization.yaml lists;\n" +
        "  --partial: the files are strategic-merge patches (required fields may be missing)\n",
    );
    return 2;
  }
  const files = [];
  for (const a of args) {
    let isDir = false;
    try {
      isDir = statSync(a).isDirectory();
    } catch {
      // a missing file is reported by validateFile
    }
    if (isDir) files.push(...kustomizationResources(a));
    else files.push(a);
  }
  const results = [];
  for (const f of files) results.push(...(await validateFile(f, { partial })));
  if (json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    for (const r of results) {
      const what = [r.kind, r.name, r.apiVersion && `(${r.apiVersion})`].filter(Boolean).join(" ");
      const where = `${r.file}${r.doc > 1 ? ` [document ${r.doc}]` : ""}`;
      if (r.problems.length === 0) {
        process.stdout.write(`ok    ${where}: ${what}\n`);
      } else {
        process.stdout.write(`FAIL  ${where}: ${what}\n`);
        for (const p of r.problems) process.stdout.write(`      ${p.field}: ${p.message}\n`);
      }
    }
    const failed = results.filter((r) => r.problems.length).length;
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
  }
  return results.some((r) => r.problems.length) ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`validate.mjs: ${err?.stack ?? err}\n`);
      process.exitCode = 2;
    },
  );
}
