"""Entry points and tooling the library never imports (a package so that tests can import the
benchmark as scripts.benchmarks)."""
