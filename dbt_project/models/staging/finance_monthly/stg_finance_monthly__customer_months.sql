{{ staging_incremental(['month', 'customer_id']) }}
-- One row per customer and month (month 'YYYY-MM', customer_id): the latest delivery wins.
with

months as (
    {{ raw_latest('finance_monthly', ['month', 'customer_id']) }}
),

final as (
    select
        month,
        customer_id,
        revenue_krw,
        cogs_krw,
        cost_to_serve_krw,
        credit_grade,
        credit_limit_krw,
        outstanding_krw,
        days_past_due,
        _loaded_at,
        _file_id
    from months
)

select * from final
