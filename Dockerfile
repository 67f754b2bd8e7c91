# syntax=docker/dockerfile:1
# Build:   docker build -t model-registry .
# Migrate: docker run --rm -e DATABASE_URL=... -e SECRET_KEY=... model-registry python manage.py migrate
# Serve:   docker run -p 8000:8000 -e DATABASE_URL=... -e SECRET_KEY=... -e ALLOWED_HOSTS=... model-registry

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY registry ./registry
# Install the dependencies only; the app runs from /app so BASE_DIR finds templates/ and static/.
RUN pip install . && pip uninstall -y model-registry
COPY manage.py gunicorn.conf.py ./
COPY templates ./templates
COPY static ./static
# collectstatic needs settings but no database; the key here is thrown away with this stage.
RUN SECRET_KEY=build-only STATIC_ROOT=/src/staticfiles python manage.py collectstatic --noinput -v 0

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    REGISTRY_VAR_DIR=/var/lib/registry STATIC_ROOT=/app/staticfiles
RUN useradd --system --create-home --home-dir /app --uid 10001 registry \
    && mkdir -p /var/lib/registry && chown registry /var/lib/registry
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/manage.py /src/gunicorn.conf.py ./
COPY --from=build /src/registry ./registry
COPY --from=build /src/templates ./templates
COPY --from=build /src/staticfiles ./staticfiles
USER registry
EXPOSE 8000
VOLUME ["/var/lib/registry"]
CMD ["gunicorn", "registry.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
