"""The embedded world's workload model: incidents generated from first principles (docs/WORKLOAD.md).

`spec` (the scenario's `workload` models), `arrivals`, `physics`, `pools`, `queues`, `runtime` and `model` (the
per-second simulation of the account), `trace` (what it records), `emit` (CloudWatch series and REPORT lines),
`truth` (the ground truth and the what-if replays), `live` (the configuration read back from the world) and
`generate` (random scenarios for a wall). Nothing here imports moto: the model is pure Python.
"""
