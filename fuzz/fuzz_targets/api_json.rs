//! API response bodies as raw bytes: every typed model, error bodies and token responses.
#![no_main]

#[path = "../common/api_json.rs"]
mod api_json;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| api_json::check(data));
