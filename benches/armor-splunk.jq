# The work of transforms/armor-splunk.xf, written for jq and jaq (benches/bench.py).
def tags: {
  "1000": {"index": "armor_alpha", "provider_type": "mssp"},
  "1001": {"index": "armor_beta", "provider_type": "mssp"},
  "2000": {"index": "armor_gamma", "provider_type": "direct"}
};
def subscribed:
  (.documentType // null) as $t
  | if ($t | type) != "string" then false
    elif ($t | startswith("EVENT_")) then true
    elif .offenseType == "Incident" then true
    else ($t | startswith("OFFENSE_")) end;
def kibana($id):
  ("eventId:\"" + ($id | gsub("\\\\"; "\\\\") | gsub("\""; "\\\"")) + "\"")
  | gsub("!"; "!!") | gsub("'"; "!'")
  | "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'" + @uri + "'))";

(if type == "array" then .[] else . end)
| select(subscribed)
| (tags[(.accountId | tostring)] // {}) as $t
| .idx = "Alpha" | .provider_id = "Lotlux" | .customer_id = "Cardify" | .account_id = "Home"
| .index = ($t.index // "")
# (jaq does not create objects through null on assignment, so build `event` explicitly)
| .event = ((.event // {}) + {provider_id: "Lotlux", provider_type: ($t.provider_type // "")})
| (if (.eventId | type) == "string" then .link_event_kibana = kibana(.eventId) else . end)
| del(.classificationTag)
| (if .startTime != null then {time: .startTime} else {} end) + {sourcetype: "_json", event: .}
