-- Trips, fares and tips per pickup location over the whole lake.
{{ config(location=env_var('QUACK_LAKE') ~ '/dashboard/trips_by_pickup_location/data.parquet') }}
SELECT
    pickup_location_id,
    count(*) AS trips,
    sum(fare_amount) AS fares,
    sum(tip_amount) AS tips
FROM {{ source('lake', 'trips') }}
GROUP BY pickup_location_id
