# One image for every role: web, worker, scheduler and the one-shot migration.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --system --create-home --home-dir /home/newsletter newsletter

COPY pyproject.toml README.md ./
COPY newsletter ./newsletter
RUN pip install .

# Content the editors maintain: issues, templates, the sponsor registry, list files.
COPY templates ./templates
COPY issues ./issues
COPY subscribers ./subscribers
COPY sponsors.yaml ./

RUN mkdir -p /app/var && chown newsletter /app/var
USER newsletter
EXPOSE 8000
CMD ["newsletter", "web", "--host", "0.0.0.0", "--port", "8000"]
