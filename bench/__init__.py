"""tickguard benchmarks. `make bench` runs every module here that defines `run(quick)`."""
