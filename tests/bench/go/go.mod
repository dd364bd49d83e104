// Go counterparts of the C benchmarks in tests/bench, built and run by
// scripts/bench (standard library only: no dependencies, no network).
module gshim/bench/gobench

go 1.19
