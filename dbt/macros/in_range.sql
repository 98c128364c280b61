{# An accepted-range test without the dbt_utils package (no package download at run time):
   fails with every row whose value lies outside [min_value, max_value]. #}
{% test in_range(model, column_name, min_value=none, max_value=none) %}
SELECT *
FROM {{ model }}
WHERE {{ column_name }} IS NOT NULL
  AND (1 = 0
  {% if min_value is not none %} OR {{ column_name }} < {{ min_value }} {% endif %}
  {% if max_value is not none %} OR {{ column_name }} > {{ max_value }} {% endif %})
{% endtest %}
