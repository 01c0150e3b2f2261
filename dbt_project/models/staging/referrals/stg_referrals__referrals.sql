-- One row per referral (referral_id): the latest delivery wins (re-delivered on sign-up).
with

referrals as (
    {{ raw_latest('referrals', ['referral_id']) }}
),

final as (
    select
        referral_id,
        referrer_customer_id,
        referred_customer_id,
        referred_at,
        channel,
        converted_at
    from referrals
)

select * from final
