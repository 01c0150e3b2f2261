-- One row per customer version with its validity interval (SCD type 2, built from the full
-- version history the customers source carries, so a one-shot backfill keeps every version).
-- A table: every fact and dim_customer look customers up here, and as a view each of them
-- computed its windows over every version again.
{{ config(materialized='table') }}
with

versions as (
    select * from {{ ref('stg_customers__versions') }}
),

ordered as (
    select
        versions.*,
        lead(updated_at) over (partition by customer_id order by updated_at) as next_updated_at,
        row_number() over (partition by customer_id order by updated_at) as version_number
    from versions
),

final as (
    select
        {{ hash_key(['customer_id', 'updated_at']) }} as customer_key,
        customer_id,
        version_number,
        updated_at as valid_from,
        coalesce(next_updated_at, {{ end_of_time() }}) as valid_to,
        -- Facts before a customer's first known version still belong to that version.
        case when version_number = 1 then {{ beginning_of_time() }} else updated_at end as effective_from,
        next_updated_at is null as is_current,
        phone_hash,
        birth_date,
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
        closed_at,
        _loaded_at
    from ordered
)

select * from final
