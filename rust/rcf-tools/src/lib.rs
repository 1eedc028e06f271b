//! Dev-only programs for rcf-core (in `src/bin`): best-of-N timings with score checksums
//! (`time_min`), profiles for callgrind and perf (`profile_*`), memory by part (`mem_parts`),
//! rrcf tree timings (`rrcf_timing`). Not part of the product; run them through `make profile`
//! or `cargo run --profile profiling -p rcf-tools --bin NAME`.
