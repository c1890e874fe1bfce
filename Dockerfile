# One image for every fleet process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The locked versions first (a layer that changes only with the lock), then the fleet itself without resolving again.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY celeryconfig.py flowerconfig.py config_sections.py ./
COPY worker ./worker
COPY agents ./agents
COPY ledger ./ledger
COPY beat ./beat
COPY gateway ./gateway
COPY migrations ./migrations
COPY samples ./samples
RUN pip install --no-deps . && useradd --create-home fleet && mkdir -p /app/var && chown fleet /app/var

USER fleet
EXPOSE 8000 5555
CMD ["celery", "-A", "worker", "worker", "-Q", "agents,ledger,reports"]
