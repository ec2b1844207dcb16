# The scamtrail image: one image, one entry point (`scamtrail`); the command picks the process
# (api, worker, relay, migrate). docker-compose.yml runs the whole system from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# A plain install (not editable): the image holds the package, not a checkout.
RUN pip install . \
    && useradd --create-home --uid 10001 scamtrail \
    && chown scamtrail /app
# Not root: a compromised process owns nothing but its own working directory.
USER scamtrail

EXPOSE 8000
ENTRYPOINT ["scamtrail"]
CMD ["api", "--host", "0.0.0.0"]
