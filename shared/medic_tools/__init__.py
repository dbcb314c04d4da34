"""Medic's developer and operator tools: the `medic` CLI, the simulator, the scenarios and the embedded AWS world.

They depend on the `medic` library and never the other way: the Lambda layer ships `medic` alone
(shared/Makefile; tests/unit/test_layer_build.py checks that no shipped module imports this package or moto).
"""
