# The platform tools image of docker-compose.yml: one-shot jobs that prepare the stack with
# the same code as `make up` (deploy/local/localstack.py), so contracts/asyncapi.yaml stays
# the one source of the topics and .local/keys the one local signing key.
#
#   python deploy/docker/platform_tasks.py topics   create the topics asyncapi declares
#   python deploy/docker/platform_tasks.py keys     create the local signing key and JWKS
#
# Platform code only (libs/common, contracts, deploy/): no service's sources. A service's own
# key files are made by its key command in its own image (docker-compose.yml's <service>-keys
# jobs); tests/architecture/test_deploy_agreement.py checks that nothing here copies a service.
#
# Build from the repository root: docker build -f deploy/docker/tools.Dockerfile .
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CIVICGRID_HOME=/app \
    CIVICGRID_CONTRACTS_DIR=/app/contracts
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY constraints.txt ./
COPY libs/common ./libs/common
RUN pip install -c constraints.txt ./libs/common
COPY contracts ./contracts
COPY deploy/local/localstack.py deploy/local/services.yaml ./deploy/local/
COPY deploy/docker/platform_tasks.py ./deploy/docker/
RUN groupadd --system --gid 10001 civicgrid \
 && useradd --system --uid 10001 --gid civicgrid --home-dir /app --no-create-home civicgrid
USER 10001:10001
ENTRYPOINT ["python", "deploy/docker/platform_tasks.py"]
