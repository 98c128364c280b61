-- Trips, fares and tips per day and pickup location, hive-partitioned by date so the dashboard's date
-- filters prune: <lake>/dashboard/daily_trips/date=YYYY-MM-DD/*.parquet.
{{ config(location=env_var('QUACK_LAKE') ~ '/dashboard/daily_trips', options={'partition_by': 'date', 'overwrite_or_ignore': true}) }}
SELECT
    date,
    pickup_location_id,
    count(*) AS trips,
    sum(fare_amount) AS fares,
    sum(tip_amount) AS tips
FROM {{ source('lake', 'trips') }}
GROUP BY date, pickup_location_id
