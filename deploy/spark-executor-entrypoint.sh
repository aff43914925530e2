#!/usr/bin/env bash
# Command of the Spark executor pods that a Weft executor (the Spark driver, client mode)
# starts on Kubernetes. Spark passes `executor` and describes the executor in SPARK_*
# variables; this starts the JVM executor backend from the pyspark install of the image.
set -euo pipefail

if [ "${1:-}" != "executor" ]; then
  echo "spark-executor-entrypoint: expected the argument 'executor' (got '${1:-}')" >&2
  exit 2
fi
: "${SPARK_HOME:?SPARK_HOME must point at the pyspark installation}"
for var in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_APPLICATION_ID \
           SPARK_EXECUTOR_POD_IP SPARK_EXECUTOR_MEMORY; do
  [ -n "${!var:-}" ] || { echo "spark-executor-entrypoint: $var is not set" >&2; exit 2; }
done

# Spark hands JVM options over as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... in order.
java_opts=()
while IFS='=' read -r name _; do
  java_opts+=("${!name}")
done < <(env | grep -E '^SPARK_JAVA_OPT_[0-9]+=' | sort -t_ -k4 -n)

exec "${JAVA_HOME:-/opt/java}/bin/java" "${java_opts[@]}" \
  -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
  -cp "${SPARK_CONF_DIR:+$SPARK_CONF_DIR:}$SPARK_HOME/jars/*" \
  org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
  --driver-url "$SPARK_DRIVER_URL" \
  --executor-id "$SPARK_EXECUTOR_ID" \
  --cores "$SPARK_EXECUTOR_CORES" \
  --app-id "$SPARK_APPLICATION_ID" \
  --hostname "$SPARK_EXECUTOR_POD_IP" \
  --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
  --podName "${SPARK_EXECUTOR_POD_NAME:-$HOSTNAME}"
