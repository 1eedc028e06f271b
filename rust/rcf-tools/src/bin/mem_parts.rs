//! Heap bytes of a full standard forest of 4-d points, by part (trees with their samplers, the
//! shared point store, the component structs).
//! Usage: cargo run --release -p rcf-tools --bin mem_parts
use rcf_core::testing::Component;
use rcf_core::{Forest, ForestConfig};

fn main() {
    let mut c = ForestConfig::new(4);
    c.seed = Some(3);
    let mut f = Forest::new(c).unwrap();
    let mut s = 1u64;
    let x: Vec<f64> = (0..20_000 * 4)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    f.update_many(&x).unwrap();
    let components: usize = f.components().iter().map(Component::heap_bytes).sum();
    let structs = std::mem::size_of_val(f.components());
    println!(
        "heap bytes: total {}, trees and samplers {components}, point store {}, structs {structs}",
        f.heap_bytes(),
        f.store().heap_bytes()
    );
}
