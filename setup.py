"""What pyproject.toml cannot say: the shipped runbook goes into the wheel.

runbooks/ stays at the repository's root, where the Lambda runbook layer (template.yaml: RunbookLayer), the docs and
the tests find it; an installed `medic` finds its copy in medic/runbooks/ (medic.config.DEFAULT_RUNBOOK), so
`medic runbook check` and `medic explain` work outside a checkout.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"


class BuildWithRunbooks(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "medic" / "runbooks"
        self.mkpath(str(target))
        for runbook in sorted(RUNBOOKS.glob("*.yaml")):
            self.copy_file(str(runbook), str(target / runbook.name))


if __name__ == "__main__":  # as pip's build backend runs it; tests/unit/test_packaging.py imports the command
    setup(cmdclass={"build_py": BuildWithRunbooks})
