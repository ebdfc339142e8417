//! Pins the harness's own proxy-wasm semantics with tiny hand-written WAT
//! modules, so a wrong host shows up here rather than as a puzzling filter
//! test failure.

use license_gate_host_tests::wire::encode_map;
use license_gate_host_tests::{Process, Vm, compile};
use wasmtime::Module;

const PROBE: &str = r#"
(module
  (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $sget (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $sset (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $respond (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_call" (func $grpc (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (data (i32.const 64) "x-present")
  (data (i32.const 80) "x-absent")
  (data (i32.const 96) "k")
  (data (i32.const 100) "v1v2")
  (data (i32.const 300) "\01\00\00\00\01\00\00\00\01\00\00\00a\00b\00")
  ;; results: 200/204 pairs ptr/size, 208/212 value ptr/size,
  ;; 216/220/224 shared ptr/size/cas, 232 proxy time, 240 wasi time
  (func (export "get_pairs") (result i32)
    (call $pairs (i32.const 0) (i32.const 200) (i32.const 204)))
  (func (export "get_present") (result i32)
    (call $value (i32.const 0) (i32.const 64) (i32.const 9) (i32.const 208) (i32.const 212)))
  (func (export "get_absent") (result i32)
    (call $value (i32.const 0) (i32.const 80) (i32.const 8) (i32.const 208) (i32.const 212)))
  (func (export "shared_set_v1_cas0") (result i32)
    (call $sset (i32.const 96) (i32.const 1) (i32.const 100) (i32.const 2) (i32.const 0)))
  (func (export "shared_set_v2_last_cas") (result i32)
    (call $sset (i32.const 96) (i32.const 1) (i32.const 102) (i32.const 2) (i32.load (i32.const 224))))
  (func (export "shared_get") (result i32)
    (call $sget (i32.const 96) (i32.const 1) (i32.const 216) (i32.const 220) (i32.const 224)))
  (func (export "shared_get_absent") (result i32)
    (call $sget (i32.const 80) (i32.const 8) (i32.const 216) (i32.const 220) (i32.const 224)))
  (func (export "times") (result i32)
    (drop (call $now (i32.const 232)))
    (call $clock (i32.const 0) (i64.const 1) (i32.const 240)))
  (func (export "respond") (result i32)
    (call $respond (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 4)
                   (i32.const 300) (i32.const 16) (i32.const -1)))
  (func (export "grpc_call") (result i32)
    (call $grpc (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
)
"#;

fn probe_module() -> Module {
    let wasm = wat::parse_str(PROBE).unwrap_or_else(|e| panic!("wat: {e}"));
    compile(&wasm).unwrap_or_else(|e| panic!("compile: {e:#}"))
}

fn probe(vm: &mut Vm, name: &str) -> i32 {
    vm.call_probe(name).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn u32_at(vm: &mut Vm, at: usize) -> u32 {
    let b = vm.read_memory(at, 4).unwrap_or_default();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u64_at(vm: &mut Vm, at: usize) -> u64 {
    let b = vm.read_memory(at, 8).unwrap_or_default();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads the (ptr, size) pair the host wrote at `at` and the bytes it points to.
fn returned(vm: &mut Vm, at: usize) -> Vec<u8> {
    let (ptr, size) = (u32_at(vm, at) as usize, u32_at(vm, at + 4) as usize);
    vm.read_memory(ptr, size).unwrap_or_default()
}

#[test]
fn header_maps_use_the_sdk_wire_format() {
    let process = Process::new();
    let mut vm = Vm::start(&probe_module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
    let headers = vec![(":path".to_string(), b"/a".to_vec()), ("x-present".to_string(), b"yes".to_vec())];
    vm.state_mut().maps[0] = headers.clone();

    assert_eq!(probe(&mut vm, "get_pairs"), 0);
    let bytes = returned(&mut vm, 200);
    assert_eq!(bytes, encode_map(&headers));
    assert_eq!(&bytes[..4], &2u32.to_le_bytes());
    assert_eq!(&bytes[20..], b":path\0/a\0x-present\0yes\0");

    assert_eq!(probe(&mut vm, "get_present"), 0);
    assert_eq!(returned(&mut vm, 208), b"yes");
    assert_eq!(probe(&mut vm, "get_absent"), 1, "NotFound");
}

#[test]
fn shared_data_has_envoys_cas_semantics_across_vms() {
    let process = Process::new();
    let module = probe_module();
    let mut a = Vm::start(&module, &process).unwrap_or_else(|e| panic!("{e:#}"));
    let mut b = Vm::start(&module, &process).unwrap_or_else(|e| panic!("{e:#}"));

    assert_eq!(probe(&mut b, "shared_get_absent"), 1, "NotFound");
    assert_eq!(probe(&mut a, "shared_set_v1_cas0"), 0);
    assert_eq!(probe(&mut b, "shared_get"), 0);
    assert_eq!(returned(&mut b, 216), b"v1");
    let first_cas = u32_at(&mut b, 224);
    assert_ne!(first_cas, 0, "every write gets a non-zero cas");

    // cas 0 writes unconditionally and the entry gets a fresh cas ...
    assert_eq!(probe(&mut a, "shared_set_v1_cas0"), 0);
    // ... so b's remembered cas is stale now.
    assert_eq!(probe(&mut b, "shared_set_v2_last_cas"), 8, "CasMismatch");
    assert_eq!(probe(&mut b, "shared_get"), 0);
    assert_ne!(u32_at(&mut b, 224), first_cas);
    assert_eq!(probe(&mut b, "shared_set_v2_last_cas"), 0);
    assert_eq!(probe(&mut a, "shared_get"), 0);
    assert_eq!(returned(&mut a, 216), b"v2");
    assert_eq!(process.shared_data().len(), 1);
}

#[test]
fn one_clock_behind_proxy_wasm_and_wasi() {
    let process = Process::new();
    let mut vm = Vm::start(&probe_module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
    process.clock().set_seconds(1_000);
    assert_eq!(probe(&mut vm, "times"), 0);
    assert_eq!(u64_at(&mut vm, 232), 1_000_000_000_000);
    assert_eq!(u64_at(&mut vm, 240), 1_000_000_000_000);
    process.clock().advance_seconds(5);
    probe(&mut vm, "times");
    assert_eq!(u64_at(&mut vm, 232), 1_005_000_000_000);
    assert_eq!(u64_at(&mut vm, 240), 1_005_000_000_000);
}

#[test]
fn local_responses_are_captured() {
    let process = Process::new();
    let mut vm = Vm::start(&probe_module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(probe(&mut vm, "respond"), 0);
    let response = vm.state().local_response.clone().unwrap_or_else(|| panic!("no local response"));
    assert_eq!(response.status, 403);
    assert_eq!(response.body, b"v1v2");
    assert_eq!(response.headers, vec![("a".to_string(), b"b".to_vec())]);
    assert_eq!(response.grpc_status, -1);
}

#[test]
fn calls_the_host_does_not_implement_fail_the_test() {
    let process = Process::new();
    let mut vm = Vm::start(&probe_module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
    let err = vm.call_probe("grpc_call").err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("unimplemented host functions: [\"proxy_grpc_call\"]"), "{err}");
}

#[test]
fn unknown_imports_are_refused_at_instantiation() {
    let wasm = wat::parse_str(
        r#"(module (import "env" "proxy_teleport" (func (param i32) (result i32))) (memory (export "memory") 1))"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let module = compile(&wasm).unwrap_or_else(|e| panic!("{e:#}"));
    let err = Vm::start(&module, &Process::new()).err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("proxy_teleport"), "{err}");
}
