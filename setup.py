"""Maps the top-level folders parallel/ and applications/ into the rands namespace.

studies/ and tests/ are not installed. Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

MAPPED = {"rands.parallel": "parallel", "rands.applications": "applications"}

packages = find_packages(include=["rands", "rands.*"])
for name, folder in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

# data folders (no __init__.py) are packages too, so their files install as package data
DATA = ["rands.data", "rands.applications.nas.data"]
packages += [d for d in DATA if d not in packages]

setup(packages=packages, package_dir=MAPPED)
