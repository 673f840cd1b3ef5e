# One image for web, worker and beat (compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 POSTURE_VAR_DIR=/var/lib/posture
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /var/lib/posture posture && mkdir -p /var/lib/posture && chown posture /var/lib/posture \
 && POSTURE_SECRET_KEY=build POSTURE_ENCRYPTION_KEY=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    python manage.py collectstatic --noinput
USER posture
EXPOSE 8000
CMD ["gunicorn", "posture.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
