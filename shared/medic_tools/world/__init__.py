"""The local AWS world: moto's server plus the extensions Medic's scenarios need (a developer tool, never shipped)."""
