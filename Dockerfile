# The TARS code-location image: the Dagster definitions (a gRPC code server for the
# webserver and the daemon) and the run workers the K8sRunLauncher starts from it.
#   docker build -t registry.example.com/tars:1.0.2 .
# deploy/helm/values.yaml runs it under Dagster's official Helm chart (docs/deployment.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/tars
COPY pyproject.toml README.md ./
COPY tars_pipeline ./tars_pipeline
# dagster-k8s and dagster-aws match the pinned dagster (1.13.27 <-> 0.29.27): the run
# launcher and the S3 compute logs are loaded by every process that opens the instance.
RUN pip install . "dagster-k8s==0.29.27" "dagster-aws==0.29.27" \
    && useradd --system --uid 10001 --home-dir /var/lib/tars --create-home tars

USER tars
# tars.yaml comes from a ConfigMap mounted here (TARS_CONFIG); data_dir and output_dir in it
# point at the shared volume (or object storage) every run pod mounts.
ENV TARS_CONFIG=/etc/tars/tars.yaml
EXPOSE 3030
CMD ["dagster", "api", "grpc", "--module-name", "tars_pipeline.definitions", \
     "--host", "0.0.0.0", "--port", "3030"]
