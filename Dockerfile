# One image for web, worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends procps \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
# Collected with the production storage (hashed, compressed names); the key is for this step only.
RUN DJANGO_ENV=production ALLOWED_HOSTS=build DATABASE_URL=postgres://build@localhost/build \
    SECRET_KEY=build-only-key-build-only-key-build-only-key-build-only \
    python manage.py collectstatic --noinput
RUN useradd --create-home app && mkdir -p /app/var/media && chown -R app /app/var
USER app
EXPOSE 8000
# SIGTERM: open connections get SHUTDOWN_TIMEOUT_S to finish, then are cancelled (o2o/settings.py).
ENV SHUTDOWN_TIMEOUT_S=10
CMD ["sh", "-c", "exec uvicorn o2o.asgi:application --host 0.0.0.0 --port 8000 --proxy-headers --forwarded-allow-ips 127.0.0.1 --workers 2 --ws-per-message-deflate false --timeout-graceful-shutdown \"${SHUTDOWN_TIMEOUT_S:-10}\""]
