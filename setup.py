"""Build hook: ship the shipped weights (``weights/*.safetensors``) inside the package as ``classsr_cli/weights/``.

Everything else is declared in pyproject.toml. In a checkout (and an editable install) the models are read from
``weights/`` itself; a wheel carries a copy, found through ``importlib.resources`` (see ``classsr_cli.zoo``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEIGHTS = Path(__file__).resolve().parent / "weights"


class BuildWithWeights(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads weights/ in place
        target = Path(self.build_lib) / "classsr_cli" / "weights"
        for src in sorted(WEIGHTS.glob("*.safetensors")):
            self.mkpath(str(target))
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildWithWeights})
