-- One row per calendar day from date_spine_start to date_spine_end, with Korean holidays.
with

days as (
    {{ dbt.date_spine('day', "cast('" ~ var('date_spine_start') ~ "' as date)", "cast('" ~ var('date_spine_end') ~ "' as date)") }}
),

holidays as (
    select * from {{ ref('korean_holidays') }}
),

calendar as (
    select
        cast(date_day as date) as date_day
    from days
),

fixed_holidays as (
    select
        date_day,
        case extract(month from date_day) * 100 + extract(day from date_day)
            when 101 then 'New Year''s Day'
            when 301 then 'Independence Movement Day'
            when 505 then 'Children''s Day'
            when 606 then 'Memorial Day'
            when 815 then 'Liberation Day'
            when 1003 then 'National Foundation Day'
            when 1009 then 'Hangul Day'
            when 1225 then 'Christmas Day'
        end as holiday_name
    from calendar
),

final as (
    select
        calendar.date_day,
        cast(
            extract(year from calendar.date_day) * 10000
            + extract(month from calendar.date_day) * 100
            + extract(day from calendar.date_day)
            as integer
        ) as date_key,
        cast(extract(isodow from calendar.date_day) as integer) as day_of_week,
        extract(isodow from calendar.date_day) in (6, 7) as is_weekend,
        cast({{ dbt.date_trunc('week', 'calendar.date_day') }} as date) as week_start,
        cast(extract(week from calendar.date_day) as integer) as iso_week,
        {{ month_label('calendar.date_day') }} as month,
        cast({{ dbt.date_trunc('month', 'calendar.date_day') }} as date) as month_start,
        cast(extract(month from calendar.date_day) as integer) as month_of_year,
        {{ dbt.concat([
            "cast(cast(extract(year from calendar.date_day) as integer) as " ~ dbt.type_string() ~ ")",
            "'-Q'",
            "cast(cast(extract(quarter from calendar.date_day) as integer) as " ~ dbt.type_string() ~ ")",
        ]) }} as quarter,
        cast(extract(year from calendar.date_day) as integer) as year,
        coalesce(holidays.holiday_name, fixed_holidays.holiday_name) is not null as is_holiday,
        coalesce(holidays.holiday_name, fixed_holidays.holiday_name) as holiday_name
    from calendar
    left join fixed_holidays
        on fixed_holidays.date_day = calendar.date_day
    left join holidays
        on holidays.holiday_date = calendar.date_day
)

select * from final
