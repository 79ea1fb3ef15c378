#!/bin/sh
# Wheels the GPU check's server part needs on the device machine (Python 3.12,
# no network there): the server's packages that its image lacks.  Run once here,
# in the repository root (PYTHON=.venv/bin/python if python3 has no pip); the device
# call then carries .whl (see bench/gpu_check.py).
set -e
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || grep -qx '/.whl/' .gitignore || echo '/.whl/' >> .git/info/exclude
"${PYTHON:-python3}" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 uvicorn==0.55.0 python-multipart==0.0.34 opentelemetry-api==1.45.2
