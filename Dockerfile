# The image docker-compose.yml builds: the platform on Python 3.11 with its Debian packages.
#
# It runs in production mode and carries no keys: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
# DJANGO_FIELD_ENCRYPTION_KEY, DATABASE_URL (PostgreSQL) and REDIS_URL come from the environment
# it is started in (docker-compose.yml passes them from .env), and without them it refuses to
# start, naming the missing variable, instead of serving with the public development keys.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY scripts/system-packages.sh scripts/system-packages.sh
RUN apt-get update && bash scripts/system-packages.sh runtime && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir .
ENV DJANGO_DEBUG=0
EXPOSE 8000
# Static files are collected at start (production serves them through a manifest of hashed
# names; the web process refuses to start without it). gunicorn.conf.py has each worker load
# the URL modules and connect before it accepts.
CMD ["sh", "-c", "python manage.py collectstatic --noinput && exec gunicorn config.wsgi:application --config gunicorn.conf.py --bind 0.0.0.0:8000 --workers 4"]
