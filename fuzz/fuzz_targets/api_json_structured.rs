//! API response bodies with structure-aware mutations: a custom mutator parses the input as
//! JSON and changes one value, key or type, so most inputs stay valid JSON and reach the
//! field decoders instead of the JSON syntax checks.
#![no_main]

#[path = "../common/api_json.rs"]
mod api_json;

use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| api_json::check(data));

/// Values that API fields take, or that stress their decoders.
const STRINGS: [&str; 14] = [
    "img-abc12",
    "srv-aaaaa",
    "acc-43ks4",
    "vol-12345",
    "zon-aaaaa",
    "typ-aaaaa",
    "available",
    "x86_64",
    "i686",
    "2026-12-04T12:00:00Z",
    "2026-13-40T99:00:00Z",
    "",
    "img-",
    "\u{0}\u{ffff}",
];

/// A small xorshift generator seeded by libFuzzer, so that a mutation replays from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % bound.max(1) as u64).unwrap_or(0)
    }
}

fn new_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => Value::from(u64::MAX),
        3 => Value::from(-1),
        4 => Value::from(1e308),
        5 => Value::from(rng.below(100_000) as u64),
        6 => Value::Array(Vec::new()),
        7 => Value::Object(Map::new()),
        _ => Value::from(STRINGS[rng.below(STRINGS.len())]),
    }
}

/// Changes one node of `value`: replaces it, removes or renames a key, or wraps it in a list.
fn mutate(value: &mut Value, rng: &mut Rng, depth: usize) {
    let descend = depth < 8 && rng.below(3) != 0;
    match value {
        Value::Object(map) if !map.is_empty() && descend => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or_default();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    if let Some(moved) = map.remove(&key) {
                        map.insert(format!("{key}_"), moved);
                    }
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate(child, rng, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let index = rng.below(items.len());
            match rng.below(4) {
                0 => {
                    items.remove(index);
                }
                1 => {
                    let copy = items[index].clone();
                    items.push(copy);
                }
                _ => mutate(&mut items[index], rng, depth + 1),
            }
        }
        other => {
            *other = match rng.below(4) {
                0 => Value::Array(vec![other.clone()]),
                _ => new_value(rng),
            };
        }
    }
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut rng = Rng(u64::from(seed) | 1 << 40);
    if rng.below(4) != 0
        && let Ok(mut document) = serde_json::from_slice::<Value>(&data[..size])
    {
        mutate(&mut document, &mut rng, 0);
        if let Ok(encoded) = serde_json::to_vec(&document)
            && encoded.len() <= max_size
        {
            data[..encoded.len()].copy_from_slice(&encoded);
            return encoded.len();
        }
    }
    fuzzer_mutate(data, size, max_size)
});
