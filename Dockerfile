# hwscore: the API, the workers and the migrations in one image; the command picks the role.
#   docker build -t hwscore .
#   docker run -p 8000:8000 -v hwscore-state:/var/lib/hwscore hwscore   # embedded: API + worker
# Scaled out (PostgreSQL, Redis, N workers): see docker-compose.yml.
FROM python:3.11-slim

# PyTorch publishes its CPU-only wheels on its own package index; the default torch
# wheel on PyPI bundles CUDA (gigabytes an MLP on CPU never uses). Override to change.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HWSCORE_STATE_DIR=/var/lib/hwscore \
    HWSCORE_DATA_DIR=/var/lib/hwscore/datasets \
    HWSCORE_HOST=0.0.0.0 \
    HWSCORE_PORT=8000

RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /opt/hwscore
# Dependencies first (cached while only the code changes), then the code itself.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p app workers hwmodels migrations \
    && pip install -c constraints.txt . \
    && pip uninstall -y hwscore
COPY app ./app
COPY workers ./workers
COPY hwmodels ./hwmodels
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-deps -c constraints.txt .

RUN useradd --system --uid 10001 --home-dir /var/lib/hwscore --create-home hwscore \
    && mkdir -p /var/lib/hwscore/datasets /var/lib/hwscore/float-cache \
    && chown -R hwscore:hwscore /var/lib/hwscore
USER hwscore
VOLUME ["/var/lib/hwscore"]
EXPOSE 8000

# Liveness only: /healthz answers while the process serves HTTP (compose's api service
# checks /readyz, which also needs the database and the broker). Workers override it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('HWSCORE_PORT', '8000')}/healthz\", timeout=4)"]

CMD ["hwscore", "serve"]
