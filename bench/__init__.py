"""autotimm's benchmarks. Each module is a script; from the repository root: `python -m bench.<name> --help`.
`bench.suite` holds what the others share (the bare Lightning fit, each backend's settings); it runs as
`python bench/suite.py` too."""
