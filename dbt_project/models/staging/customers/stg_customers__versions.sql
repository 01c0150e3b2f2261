-- One row per customer version (customer_id, updated_at); a version delivered twice keeps the
-- latest delivery. Name and email stay in raw; the phone only as a hash, for call matching.
with

versions as (
    {{ raw_latest('customers', ['customer_id', 'updated_at']) }}
),

final as (
    select
        customer_id,
        updated_at,
        case
            when phone is null or regexp_replace(phone, '[^0-9]', '', 'g') = '' then null
            else md5(regexp_replace(phone, '[^0-9]', '', 'g'))
        end as phone_hash,
        birth_date,
        coalesce(gender, 'U') as gender,
        household_size,
        income_band,
        education,
        occupation,
        region,
        city,
        signup_date,
        signup_channel,
        marketing_opt_in = 'Y' as marketing_opt_in,
        status,
        closed_at,
        _loaded_at
    from versions
)

select * from final
