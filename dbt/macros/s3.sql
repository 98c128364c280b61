{# For the s3 target: load httpfs from the PyPI package's file and create the S3 secret from the
   AWS variables. A no-op for the local target. #}
{% macro quack_s3_setup() %}
  {% if target.name == 's3' %}
    {% set endpoint = env_var('AWS_ENDPOINT_URL_S3', '') %}
    LOAD '{{ env_var('QUACK_HTTPFS_EXTENSION') }}';
    CREATE OR REPLACE SECRET quack_s3 (
      TYPE s3,
      KEY_ID '{{ env_var('AWS_ACCESS_KEY_ID', '') }}',
      SECRET '{{ env_var('AWS_SECRET_ACCESS_KEY', '') }}',
      {% if env_var('AWS_SESSION_TOKEN', '') %}SESSION_TOKEN '{{ env_var('AWS_SESSION_TOKEN') }}',{% endif %}
      {% if endpoint %}ENDPOINT '{{ endpoint.replace('http://', '').replace('https://', '').rstrip('/') }}',
      URL_STYLE 'path', USE_SSL {{ 'true' if endpoint.startswith('https://') else 'false' }},{% endif %}
      REGION '{{ env_var('AWS_REGION', 'us-east-1') }}'
    );
  {% else %}
    SELECT 1;
  {% endif %}
{% endmacro %}
