"""The `medic` command's subcommands, one module per group: each adds its arguments to the parser `medic_tools.cli`
builds and implements its command. Imported when the parser is built, so nothing heavy at their top: what a command
needs is imported when it runs."""
