-- The dashboard's "Top pickup locations by number of trips": every location ranked (the page takes
-- the top k), ties broken by location id.
{{ config(location=env_var('QUACK_LAKE') ~ '/dashboard/top_pickup_locations/data.parquet') }}
SELECT
    row_number() OVER (ORDER BY trips DESC, pickup_location_id) AS rank,
    pickup_location_id,
    trips
FROM {{ ref('trips_by_pickup_location') }}
