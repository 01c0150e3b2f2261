{#- The audit trail of what the warehouse saw: the latest version of every customer, as of
    each dbt run (timestamp strategy on updated_at). dim_customer is built from the source's
    own version history instead (see its description): a snapshot only records the state at
    each run, so a two-year backfill in one run would collapse each customer to one row. -#}
{% snapshot snap_customers %}
{{
    config(
        unique_key='customer_id',
        strategy='timestamp',
        updated_at='updated_at',
        dbt_valid_to_current="cast('9999-12-31 00:00:00' as timestamp)",
    )
}}
select
    customer_id,
    valid_from as updated_at,
    gender,
    household_size,
    income_band,
    education,
    occupation,
    region,
    city,
    signup_date,
    signup_channel,
    marketing_opt_in,
    status,
    closed_at
from {{ ref('int_customers_versioned') }}
where is_current
{% endsnapshot %}
