"""What arrives: the alarm state-change events (`events`, every documented shape; their models by part in
`configuration`, `state` and `base`), the signal an alarm reports (`signals`) and its target (`targets`), and which
way it breached (`breach`)."""
