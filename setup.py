"""Maps the top-level folders parallel/ and applications/ into the rands namespace.

studies/ and tests/ are not installed. Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

MAPPED = {"rands.parallel": "parallel", "rands.applications": "applications"}

packages = find_packages(include=["rands", "rands.*"])
for name, folder in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=MAPPED)
