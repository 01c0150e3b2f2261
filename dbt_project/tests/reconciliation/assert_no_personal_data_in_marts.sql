-- Privacy: no column of a mart is named like personal data or free text. Returns offenders.
select
    table_name,
    column_name
from information_schema.columns
where table_schema = 'marts'
    and (
        column_name in ('name', 'phone', 'email', 'birth_date', 'caller_phone', 'phone_hash',
                        'caller_phone_hash', 'summary', 'note', 'text', 'comment', 'staff_name',
                        'customer_name')
    )
