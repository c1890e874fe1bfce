# One image for every fleet process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The locked versions first (a layer that changes only with the lock), then the fleet itself without resolving again.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY celeryconfig.py flowerconfig.py config_sections.py fleet_contract.py ./
COPY worker ./worker
COPY agents ./agents
COPY ledger ./ledger
COPY beat ./beat
COPY gateway ./gateway
COPY migrations ./migrations
COPY samples ./samples
# A numeric user, so Kubernetes' runAsNonRoot can verify it (deploy/k8s runs as this uid).
RUN pip install --no-deps . && useradd --uid 10001 --user-group --create-home fleet \
    && mkdir -p /app/var && chown fleet:fleet /app/var

USER 10001:10001
EXPOSE 8000 5555
CMD ["celery", "-A", "worker", "worker", "-Q", "agents,ledger,reports"]
