//! Holding what the daemon did against an IAM policy document: every AWS request it made (as
//! the fault proxy recorded it) becomes the IAM authorization checks AWS makes for it (action,
//! resource ARN, condition keys: the tags of the request and, for a resource that exists, its
//! own), and each must be allowed by a statement of the documents. The evaluator knows the
//! condition operators the documents use; an unknown one allows nothing.

use std::collections::HashMap;

use serde_json::Value;

use super::proxy::Recorded;

/// One authorization check AWS makes for a request.
#[derive(Debug, Clone)]
pub struct Check {
    /// Which request it is for (`rds CreateDBInstance`).
    pub request: String,
    pub action: String,
    pub resource: String,
    pub context: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
    /// (operator, key, values)
    conditions: Vec<(String, String, Vec<String>)>,
}

pub struct Policy(Vec<Statement>);

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        other => vec![other.to_string()],
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Policy {
    /// Reads policy documents (attached side by side), replacing their placeholders
    /// (`REGION`, `ACCOUNT_ID`, ...).
    pub fn load(texts: &[&str], fill: &[(&str, &str)]) -> Policy {
        Policy(
            texts
                .iter()
                .flat_map(|text| Self::statements(text, fill))
                .collect(),
        )
    }

    fn statements(text: &str, fill: &[(&str, &str)]) -> Vec<Statement> {
        let mut text = text.to_string();
        for (mark, value) in fill {
            text = text.replace(mark, value);
        }
        let doc: Value = serde_json::from_str(&text).expect("the policy is JSON");
        doc["Statement"]
            .as_array()
            .expect("Statement")
            .iter()
            .map(|s| {
                assert_eq!(s["Effect"], "Allow", "only Allow statements are expected");
                let mut conditions = Vec::new();
                if let Some(ops) = s["Condition"].as_object() {
                    for (op, keys) in ops {
                        for (key, values) in keys.as_object().expect("condition keys") {
                            conditions.push((op.clone(), key.clone(), strings(values)));
                        }
                    }
                }
                Statement {
                    sid: s["Sid"].as_str().unwrap_or_default().to_string(),
                    actions: strings(&s["Action"]),
                    resources: strings(&s["Resource"]),
                    conditions,
                }
            })
            .collect()
    }

    /// The statement that allows `check`, if one does.
    pub fn allows(&self, check: &Check) -> Option<&str> {
        self.0
            .iter()
            .find(|s| {
                s.actions
                    .iter()
                    .any(|a| glob(&a.to_lowercase(), &check.action.to_lowercase()))
                    && s.resources.iter().any(|r| glob(r, &check.resource))
                    && s.conditions
                        .iter()
                        .all(|(op, key, values)| condition(op, key, values, &check.context))
            })
            .map(|s| s.sid.as_str())
    }
}

pub fn condition(
    op: &str,
    key: &str,
    values: &[String],
    context: &HashMap<String, Vec<String>>,
) -> bool {
    let present = context.get(key);
    match op {
        "StringEquals" | "Bool" => {
            present.is_some_and(|have| have.iter().any(|h| values.contains(h)))
        }
        "StringLike" => {
            present.is_some_and(|have| have.iter().any(|h| values.iter().any(|v| glob(v, h))))
        }
        // "true": the key is absent; "false": it is present.
        "Null" => values
            .iter()
            .all(|v| (v == "true") == present.is_none_or(|have| have.is_empty())),
        // Vacuously true without the key, as in IAM.
        "ForAllValues:StringEquals" => {
            present.is_none_or(|have| have.iter().all(|h| values.contains(h)))
        }
        _ => false,
    }
}

/// What the checks need to know beyond one request: where, and the tags of the resources
/// tenantd created earlier in the run (for `aws:ResourceTag/...`).
pub struct Scope {
    pub region: String,
    pub account: String,
    tags: HashMap<String, Vec<(String, String)>>,
}

impl Scope {
    pub fn new(region: &str, account: &str) -> Self {
        Scope {
            region: region.into(),
            account: account.into(),
            tags: HashMap::new(),
        }
    }

    fn rds_arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:rds:{}:{}:{kind}:{id}", self.region, self.account)
    }

    fn secret_arn(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_string()
        } else {
            // A name: its ARN has a random 6-character suffix.
            format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}-AbCdEf",
                self.region, self.account
            )
        }
    }

    fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.region, self.account
        )
    }

    /// The tags known for a resource (by a key of its kind and name).
    pub fn resource_tags(&self, key: &str) -> HashMap<String, Vec<String>> {
        self.tags
            .get(key)
            .into_iter()
            .flatten()
            .map(|(k, v)| (format!("aws:ResourceTag/{k}"), vec![v.clone()]))
            .collect()
    }

    /// The authorization checks of one recorded request.
    pub fn checks(&mut self, r: &Recorded) -> Vec<Check> {
        let request = format!("{} {}", r.service, r.operation);
        let mut out = Vec::new();
        let mut check = |action: &str, resource: String, context: HashMap<String, Vec<String>>| {
            out.push(Check {
                request: request.clone(),
                action: action.into(),
                resource,
                context,
            });
        };
        match r.service.as_str() {
            "rds" => {
                let form: HashMap<String, String> =
                    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&r.body)
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                let get = |k: &str| form.get(k).cloned().unwrap_or_default();
                let id = get("DBInstanceIdentifier");
                let action = format!("rds:{}", r.operation);
                match r.operation.as_str() {
                    "CreateDBInstance" => {
                        let tags = form_tags(&form);
                        let mut ctx = request_tags(&tags);
                        for (key, param) in [
                            ("rds:DatabaseEngine", "Engine"),
                            ("rds:StorageEncrypted", "StorageEncrypted"),
                            ("rds:PubliclyAccessible", "PubliclyAccessible"),
                        ] {
                            if let Some(v) = form.get(param) {
                                ctx.insert(key.into(), vec![v.clone()]);
                            }
                        }
                        check(&action, self.rds_arn("db", &id), ctx.clone());
                        let major = get("EngineVersion")
                            .split('.')
                            .next()
                            .unwrap_or("16")
                            .to_string();
                        check(
                            &action,
                            self.rds_arn("og", &format!("default:postgres-{major}")),
                            HashMap::new(),
                        );
                        check(
                            &action,
                            self.rds_arn("pg", &format!("default.postgres{major}")),
                            HashMap::new(),
                        );
                        if let Some(group) = form.get("DBSubnetGroupName") {
                            check(&action, self.rds_arn("subgrp", group), HashMap::new());
                        }
                        if !tags.is_empty() {
                            ctx.insert("rds:TagsFromRequest".into(), vec!["true".into()]);
                            check("rds:AddTagsToResource", self.rds_arn("db", &id), ctx);
                        }
                        self.tags.insert(format!("db:{id}"), tags);
                    }
                    "DescribeDBInstances" => {
                        let id = if id.is_empty() { "*".into() } else { id };
                        check(&action, self.rds_arn("db", &id), HashMap::new());
                    }
                    "ModifyDBInstance" | "StopDBInstance" | "StartDBInstance"
                    | "DeleteDBInstance" | "RebootDBInstance" => {
                        let ctx = self.resource_tags(&format!("db:{id}"));
                        check(&action, self.rds_arn("db", &id), ctx.clone());
                        if let Some(group) = form.get("DBParameterGroupName") {
                            check(&action, self.rds_arn("pg", group), HashMap::new());
                        }
                        if let Some(snapshot) = form.get("FinalDBSnapshotIdentifier") {
                            check("rds:CreateDBSnapshot", self.rds_arn("db", &id), ctx);
                            check(
                                "rds:CreateDBSnapshot",
                                self.rds_arn("snapshot", snapshot),
                                HashMap::new(),
                            );
                            // The instance's tags are copied onto the snapshot.
                            let tags = self
                                .tags
                                .get(&format!("db:{id}"))
                                .cloned()
                                .unwrap_or_default();
                            // Inherited, not sent: rds:TagsFromRequest is false.
                            let mut inherited = request_tags(&tags);
                            inherited.insert("rds:TagsFromRequest".into(), vec!["false".into()]);
                            check(
                                "rds:AddTagsToResource",
                                self.rds_arn("snapshot", snapshot),
                                inherited,
                            );
                            self.tags.insert(format!("snapshot:{snapshot}"), tags);
                        }
                    }
                    "AddTagsToResource" => {
                        // arn:aws:rds:<region>:<account>:<type>:<name>
                        let arn = get("ResourceName");
                        let mut parts = arn.splitn(7, ':').skip(5);
                        let (kind, name) = (
                            parts.next().unwrap_or_default().to_string(),
                            parts.next().unwrap_or_default().to_string(),
                        );
                        let tags = form_tags(&form);
                        let key = format!("{kind}:{name}");
                        let mut ctx = request_tags(&tags);
                        ctx.extend(self.resource_tags(&key));
                        ctx.insert("rds:TagsFromRequest".into(), vec!["true".into()]);
                        check(&action, self.rds_arn(&kind, &name), ctx);
                        let known = self.tags.entry(key).or_default();
                        for (k, v) in tags {
                            known.retain(|(old, _)| *old != k);
                            known.push((k, v));
                        }
                    }
                    "RemoveTagsFromResource" => {
                        let arn = get("ResourceName");
                        let mut parts = arn.splitn(7, ':').skip(5);
                        let (kind, name) = (
                            parts.next().unwrap_or_default().to_string(),
                            parts.next().unwrap_or_default().to_string(),
                        );
                        let keys: Vec<String> = (1..=50)
                            .map_while(|n| {
                                ["TagKeys.member", "TagKeys.TagKey"]
                                    .iter()
                                    .find_map(|p| form.get(&format!("{p}.{n}")).cloned())
                            })
                            .collect();
                        let key = format!("{kind}:{name}");
                        let mut ctx = self.resource_tags(&key);
                        ctx.insert("aws:TagKeys".into(), keys.clone());
                        check(&action, self.rds_arn(&kind, &name), ctx);
                        if let Some(known) = self.tags.get_mut(&key) {
                            known.retain(|(k, _)| !keys.contains(k));
                        }
                    }
                    "DeleteDBSnapshot" => {
                        let snapshot = get("DBSnapshotIdentifier");
                        let ctx = self.resource_tags(&format!("snapshot:{snapshot}"));
                        check(&action, self.rds_arn("snapshot", &snapshot), ctx);
                    }
                    "DescribeDBSnapshots" => {
                        check(&action, self.rds_arn("snapshot", "*"), HashMap::new())
                    }
                    "DescribePendingMaintenanceActions" => {
                        check(&action, self.rds_arn("db", "*"), HashMap::new())
                    }
                    "ApplyPendingMaintenanceAction" => {
                        // ResourceIdentifier is the instance's ARN.
                        let arn = get("ResourceIdentifier");
                        let name = arn.rsplit(':').next().unwrap_or_default().to_string();
                        let ctx = self.resource_tags(&format!("db:{name}"));
                        check(&action, self.rds_arn("db", &name), ctx);
                    }
                    "DescribeCertificates" => {
                        check(&action, self.rds_arn("cert", "*"), HashMap::new())
                    }
                    "DescribeDBInstanceAutomatedBackups" => {
                        check(&action, self.rds_arn("auto-backup", "*"), HashMap::new())
                    }
                    "DescribeDBEngineVersions" | "DescribeAccountAttributes" => {
                        check(&action, "*".into(), HashMap::new())
                    }
                    "CreateBlueGreenDeployment" => {
                        // The deployment is new (its ARN unknown); green is a read replica of
                        // the source, in the target parameter group.
                        let tags = form_tags(&form);
                        let ctx = request_tags(&tags);
                        let source = get("Source");
                        let source = source.rsplit(':').next().unwrap_or_default().to_string();
                        let source_tags = self.resource_tags(&format!("db:{source}"));
                        check(&action, self.rds_arn("deployment", "*"), ctx.clone());
                        check(&action, self.rds_arn("db", &source), source_tags.clone());
                        check(
                            "rds:CreateDBInstanceReadReplica",
                            self.rds_arn("db", &source),
                            source_tags,
                        );
                        if let Some(group) = form.get("TargetDBParameterGroupName") {
                            check(&action, self.rds_arn("pg", group), HashMap::new());
                            check(
                                "rds:CreateDBInstanceReadReplica",
                                self.rds_arn("pg", group),
                                HashMap::new(),
                            );
                        }
                        let mut tagging = ctx;
                        tagging.insert("rds:TagsFromRequest".into(), vec!["true".into()]);
                        check(
                            "rds:AddTagsToResource",
                            self.rds_arn("deployment", "*"),
                            tagging,
                        );
                        // One deployment per test run: later calls name it by its bgd- id.
                        self.tags.insert("deployment:*".into(), tags);
                        self.tags.insert(
                            "deployment-source".into(),
                            vec![("id".into(), source.clone())],
                        );
                    }
                    "SwitchoverBlueGreenDeployment" | "DeleteBlueGreenDeployment" => {
                        let id = get("BlueGreenDeploymentIdentifier");
                        let ctx = self.resource_tags("deployment:*");
                        check(&action, self.rds_arn("deployment", &id), ctx);
                        if r.operation == "SwitchoverBlueGreenDeployment" {
                            // Green takes the source's name (and carries its tags); the source
                            // becomes <source>-old1 with its own.
                            let source = self
                                .tags
                                .get("deployment-source")
                                .and_then(|t| t.first())
                                .map(|(_, id)| id.clone())
                                .unwrap_or_default();
                            let db = format!("db:{source}");
                            let tags = self.tags.get(&db).cloned().unwrap_or_default();
                            check(
                                &action,
                                self.rds_arn("db", &source),
                                self.resource_tags(&db),
                            );
                            self.tags.insert(format!("db:{source}-old1"), tags);
                        }
                    }
                    "DescribeBlueGreenDeployments" => {
                        check(&action, self.rds_arn("deployment", "*"), HashMap::new())
                    }
                    "CreateDBParameterGroup" => {
                        let name = get("DBParameterGroupName");
                        let tags = form_tags(&form);
                        let mut ctx = request_tags(&tags);
                        check(&action, self.rds_arn("pg", &name), ctx.clone());
                        if !tags.is_empty() {
                            ctx.insert("rds:TagsFromRequest".into(), vec!["true".into()]);
                            check("rds:AddTagsToResource", self.rds_arn("pg", &name), ctx);
                        }
                        self.tags.insert(format!("pg:{name}"), tags);
                    }
                    "ModifyDBParameterGroup" => {
                        let name = get("DBParameterGroupName");
                        let ctx = self.resource_tags(&format!("pg:{name}"));
                        check(&action, self.rds_arn("pg", &name), ctx);
                    }
                    "DescribeDBParameterGroups" | "DescribeDBParameters" => {
                        let name = form
                            .get("DBParameterGroupName")
                            .cloned()
                            .unwrap_or_else(|| "*".into());
                        check(&action, self.rds_arn("pg", &name), HashMap::new());
                    }
                    "ListTagsForResource" => {
                        check(&action, get("ResourceName"), HashMap::new());
                    }
                    "DescribeEngineDefaultParameters" => check(&action, "*".into(), HashMap::new()),
                    other => check(&format!("unmapped:rds:{other}"), "?".into(), HashMap::new()),
                }
            }
            "secretsmanager" => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let action = format!("secretsmanager:{}", r.operation);
                match r.operation.as_str() {
                    "CreateSecret" => {
                        let name = body["Name"].as_str().unwrap_or_default().to_string();
                        let tags: Vec<(String, String)> = body["Tags"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|t| {
                                (
                                    t["Key"].as_str().unwrap_or_default().to_string(),
                                    t["Value"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect();
                        let ctx = request_tags(&tags);
                        check(&action, self.secret_arn(&name), ctx.clone());
                        if !tags.is_empty() {
                            check("secretsmanager:TagResource", self.secret_arn(&name), ctx);
                        }
                        self.tags.insert(format!("secret:{name}"), tags);
                    }
                    "DescribeSecret" | "GetSecretValue" | "PutSecretValue" | "RestoreSecret"
                    | "DeleteSecret" | "UntagResource" | "TagResource" => {
                        let id = body["SecretId"].as_str().unwrap_or_default();
                        let ctx = self.resource_tags(&format!("secret:{}", secret_name(id)));
                        check(&action, self.secret_arn(id), ctx);
                    }
                    "ListSecrets" => check(&action, "*".into(), HashMap::new()),
                    other => check(
                        &format!("unmapped:secretsmanager:{other}"),
                        "?".into(),
                        HashMap::new(),
                    ),
                }
            }
            "monitoring" => {
                let body: Value = ciborium::from_reader::<ciborium::Value, _>(&r.body[..])
                    .ok()
                    .and_then(|v| serde_json::to_value(v).ok())
                    .unwrap_or_default();
                let action = format!("cloudwatch:{}", r.operation);
                match r.operation.as_str() {
                    "PutMetricAlarm" => {
                        let name = body["AlarmName"].as_str().unwrap_or_default();
                        let mut ctx = HashMap::new();
                        if let Some(actions) = body["AlarmActions"].as_array() {
                            ctx.insert(
                                "cloudwatch:AlarmActions".into(),
                                strings(&Value::Array(actions.clone())),
                            );
                        }
                        check(&action, self.alarm_arn(name), ctx);
                    }
                    "DeleteAlarms" | "DescribeAlarms" => {
                        for name in body["AlarmNames"].as_array().into_iter().flatten() {
                            check(
                                &action,
                                self.alarm_arn(name.as_str().unwrap_or_default()),
                                HashMap::new(),
                            );
                        }
                        if let Some(prefix) = body["AlarmNamePrefix"].as_str() {
                            check(
                                &action,
                                self.alarm_arn(&format!("{prefix}*")),
                                HashMap::new(),
                            );
                        }
                    }
                    other => check(
                        &format!("unmapped:cloudwatch:{other}"),
                        "?".into(),
                        HashMap::new(),
                    ),
                }
            }
            other => check(
                &format!("unmapped:{other}:{}", r.operation),
                "?".into(),
                HashMap::new(),
            ),
        }
        out
    }
}

/// `Tags.Tag.N.Key` / `Tags.Tag.N.Value` (or `Tags.member.N.*`) of a query-protocol request.
fn form_tags(form: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for n in 1..=50 {
        let key = ["Tags.Tag", "Tags.member"]
            .iter()
            .find_map(|p| form.get(&format!("{p}.{n}.Key")).map(|k| (p, k)));
        let Some((prefix, key)) = key else { break };
        let value = form
            .get(&format!("{prefix}.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        tags.push((key.clone(), value));
    }
    tags
}

pub fn request_tags(tags: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut ctx: HashMap<String, Vec<String>> = tags
        .iter()
        .map(|(k, v)| (format!("aws:RequestTag/{k}"), vec![v.clone()]))
        .collect();
    if !tags.is_empty() {
        ctx.insert(
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        );
    }
    ctx
}

/// A secret's name from its id (a name, or an ARN ending in `-XXXXXX`).
pub fn secret_name(id: &str) -> String {
    match id.split_once(":secret:") {
        Some((_, rest)) => rest
            .rsplit_once('-')
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| rest.to_string()),
        None => id.to_string(),
    }
}
