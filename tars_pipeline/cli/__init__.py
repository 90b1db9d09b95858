"""The seed's command-line tools. Each one materializes Dagster assets (the same code path
as the UI) on a persistent instance and writes the seed-named outputs."""
