"""What arrives: the alarm state-change events (`events`, every documented shape; their models by part in
`configuration`, `state` and `base`), the signal an alarm reports and its target (`signals`), and which way it
breached (`breach`)."""
