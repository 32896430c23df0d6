# syntax=docker/dockerfile:1
# toolq: one image for the facade and every worker pool; docker-compose.yml picks the role
# with the command (`facade`, or `workers` with TOOLQ_TOOLS / TOOLQ_POOL in the environment).

# --- build: wheels of toolq and of every dependency pyproject.toml names ------------------------
FROM python:3.12-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY facade ./facade
COPY workers ./workers
COPY client ./client
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed, nothing else from the build --------------------------------
FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    TOOLQ_HOST=0.0.0.0 \
    TOOLQ_PORT=8000
RUN groupadd --system --gid 10001 toolq \
    && useradd --system --uid 10001 --gid toolq --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin toolq
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000
# Both processes drain on SIGTERM: the facade finishes its requests, a worker lets running jobs
# finish for TOOLQ_DRAIN_SECONDS. Give them longer than that before SIGKILL (stop_grace_period).
STOPSIGNAL SIGTERM
# Readiness of the facade: /readyz answers 200 only while Redis answers. Worker services
# override this with `python -m workers --check` (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('TOOLQ_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["python", "-m"]
CMD ["facade"]
