# The template every services/<name>/Dockerfile follows. Make a service's Dockerfile with
#
#     sed 's/__SERVICE__/<name>/g' deploy/docker/service.Dockerfile > services/<name>/Dockerfile
#
# and build it from the repository root (the build context must hold libs/common, contracts
# and constraints.txt):
#
#     docker build -f services/<name>/Dockerfile -t civicgrid/<name>:local .
#
# docker-compose.yml and deploy/k8s run the image as it is; tests/architecture/
# test_deploy_agreement.py checks that every service's Dockerfile keeps this shape
# (python:3.11-slim, non-root, contracts copied, /healthz HEALTHCHECK, the service's module).

# ---------------------------------------------------------------- build: a virtualenv
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The same pins as the checkout (.venv), so the image runs what the tests ran.
COPY constraints.txt ./
# The platform first: it changes less often than a service, so its layer stays cached.
COPY libs/common ./libs/common
RUN pip install -c constraints.txt ./libs/common
COPY services/__SERVICE__ ./services/__SERVICE__
RUN pip install -c constraints.txt ./services/__SERVICE__

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim AS runtime
# A fixed uid/gid so Kubernetes' runAsUser and file ownership agree (deploy/k8s uses 10001).
RUN groupadd --system --gid 10001 civicgrid \
 && useradd --system --uid 10001 --gid civicgrid --home-dir /app --no-create-home civicgrid
COPY --from=build /opt/venv /opt/venv
# Event schemas and the AsyncAPI document: read at run time to validate events.
COPY contracts /app/contracts
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CIVICGRID_HOME=/app \
    CIVICGRID_CONTRACTS_DIR=/app/contracts \
    CIVICGRID_SERVICE_NAME=__SERVICE__ \
    CIVICGRID_HTTP_HOST=0.0.0.0 \
    CIVICGRID_HTTP_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only: /readyz (dependencies reachable) is for orchestrators that route traffic.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['CIVICGRID_HTTP_PORT'], timeout=2)"]
CMD ["python", "-m", "civicgrid___SERVICE__.entrypoints.main"]
