# The image docker-compose.yml builds: the platform on Python 3.11 with its Debian packages.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY scripts/system-packages.sh scripts/system-packages.sh
RUN apt-get update && bash scripts/system-packages.sh runtime && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
