# One image for web, worker and beat (compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 POSTURE_VAR_DIR=/var/lib/posture
WORKDIR /app
# WeasyPrint (the PDF report) lays text out with pango; DejaVu is the report's font.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files for production's manifest storage (bin/build-static says why; the tests run the
# same script and serve the result under gunicorn). They stay root-owned: the app only reads them.
RUN bin/build-static
# /var/lib/posture/media holds uploaded attestation files and reports: compose mounts a volume there.
RUN useradd --system --home /var/lib/posture posture \
 && mkdir -p /var/lib/posture/media && chown posture /var/lib/posture /var/lib/posture/media
USER posture
EXPOSE 8000
CMD ["gunicorn", "posture.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
