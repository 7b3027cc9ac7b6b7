//! Cells of the other built-in kinds, the HumanDuration cut-overs, and the Table object.

use drover_core::table::{IncludeObject, human_duration, row_cells, table};
use serde_json::{Value, json};

/// 2024-05-01T10:00:00Z.
const NOW: i64 = 1_714_557_600;

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T09:00:00Z", "uid": "u-1", "resourceVersion": "42"})
}

fn cells(group: &str, kind: &str, obj: Value) -> Vec<Value> {
    row_cells(group, kind, &obj, NOW)
}

#[test]
fn human_duration_matches_upstream_cut_overs() {
    let cases = [
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (4 * 3600, "4h"),
        (7 * 3600 + 59 * 60 + 59, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86_400 - 1, "7d23h"),
        (8 * 86_400, "8d"),
        (95 * 86_400, "95d"),
        (2 * 365 * 86_400 - 1, "729d"),
        (2 * 365 * 86_400, "2y"),
        (2 * 365 * 86_400 + 5 * 86_400, "2y5d"),
        (8 * 365 * 86_400, "8y"),
        (20 * 365 * 86_400 + 100 * 86_400, "20y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
}

#[test]
fn age_is_unknown_without_a_creation_timestamp() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    assert_eq!(cells("", "ConfigMap", cm)[2], "<unknown>");
    let future = json!({"metadata": {"name": "c", "creationTimestamp": "2024-05-01T10:00:05Z"}});
    assert_eq!(cells("", "ConfigMap", future)[2], "<invalid>");
}

#[test]
fn services_print_type_specific_external_ips_and_ports() {
    let svc = |spec: Value, status: Value| json!({"metadata": meta("web"), "spec": spec, "status": status});
    let cluster_ip = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
               "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
               "selector": {"app": "web", "tier": "front"}}),
        json!({}),
    );
    assert_eq!(
        cells("", "Service", cluster_ip),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80/TCP,53/UDP"),
            json!("60m"),
            json!("app=web,tier=front")
        ]
    );

    let node_port = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "externalIPs": ["192.0.2.7"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    let c = cells("", "Service", node_port);
    assert_eq!(
        (&c[3], &c[4], &c[6]),
        (
            &json!("192.0.2.7"),
            &json!("80:30080/TCP"),
            &json!("<none>")
        )
    );

    let pending = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": []}),
        json!({}),
    );
    let c = cells("", "Service", pending);
    assert_eq!((&c[3], &c[4]), (&json!("<pending>"), &json!("<none>")));

    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "externalIPs": ["192.0.2.9"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}, {"hostname": "lb.example.com"}]}}),
    );
    assert_eq!(
        cells("", "Service", lb)[3],
        "203.0.113.5,lb.example.com,192.0.2.9"
    );

    let headless = svc(
        json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
        json!({}),
    );
    assert_eq!(cells("", "Service", headless)[2], "None");

    let external = svc(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    let c = cells("", "Service", external);
    assert_eq!((&c[2], &c[3]), (&json!("<none>"), &json!("db.example.com")));
}

#[test]
fn deployments_replica_sets_and_stateful_sets_count_ready_replicas() {
    let deploy = json!({
        "metadata": meta("web"),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]}]},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}, {"name": "log", "image": "fluent-bit:3"}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    assert_eq!(
        cells("apps", "Deployment", deploy.clone()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("60m"),
            json!("web,log"),
            json!("nginx:1.26,fluent-bit:3"),
            json!("app=web,env in (canary,prod)")
        ]
    );
    let fresh = json!({"metadata": meta("new"), "spec": {"replicas": 2, "template": {"spec": {"containers": []}}}});
    assert_eq!(
        cells("apps", "Deployment", fresh)[1..4],
        [json!("0/2"), json!(0), json!(0)]
    );

    let mut rs = deploy.clone();
    rs["metadata"]["name"] = json!("web-5d4f8c");
    let c = cells("apps", "ReplicaSet", rs);
    assert_eq!(c[1..4], [json!(3), json!(3), json!(2)]);
    assert_eq!(c[7], "app=web,env in (canary,prod)");

    let sts = json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}}}, "status": {"readyReplicas": 1}});
    assert_eq!(
        cells("apps", "StatefulSet", sts),
        vec![
            json!("db"),
            json!("1/3"),
            json!("60m"),
            json!("pg"),
            json!("postgres:16")
        ]
    );

    let ds = json!({
        "metadata": meta("agent"),
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2},
    });
    assert_eq!(
        cells("apps", "DaemonSet", ds)[1..7],
        [
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux")
        ]
    );
}

#[test]
fn jobs_show_status_completions_and_duration() {
    let job = |spec: Value, status: Value| json!({"metadata": meta("pi"), "spec": spec, "status": status});
    let running = job(
        json!({"completions": 3, "parallelism": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
               "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}}),
        json!({"succeeded": 1, "startTime": "2024-05-01T09:58:58Z"}),
    );
    assert_eq!(
        cells("batch", "Job", running),
        vec![
            json!("pi"),
            json!("Running"),
            json!("1/3"),
            json!("62s"),
            json!("60m"),
            json!("pi"),
            json!("perl"),
            json!("batch.kubernetes.io/controller-uid=u-1")
        ]
    );
    let complete = job(
        json!({"completions": 1}),
        json!({"succeeded": 1, "startTime": "2024-05-01T09:00:00Z", "completionTime": "2024-05-01T09:03:02Z",
               "conditions": [{"type": "Complete", "status": "True"}]}),
    );
    assert_eq!(
        cells("batch", "Job", complete)[1..4],
        [json!("Complete"), json!("1/1"), json!("3m2s")]
    );
    let parallel = job(
        json!({"parallelism": 4}),
        json!({"conditions": [{"type": "Failed", "status": "True"}]}),
    );
    assert_eq!(
        cells("batch", "Job", parallel)[1..4],
        [json!("Failed"), json!("0/1 of 4"), json!("")]
    );
    let suspended = job(
        json!({}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    assert_eq!(
        cells("batch", "Job", suspended)[1..3],
        [json!("Suspended"), json!("0/1")]
    );
}

#[test]
fn cron_jobs_show_schedule_timezone_suspend_active_and_last_schedule() {
    let cj = json!({
        "metadata": meta("backup"),
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                 "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup:2"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T09:55:00Z"},
    });
    assert_eq!(
        cells("batch", "CronJob", cj),
        vec![
            json!("backup"),
            json!("*/5 * * * *"),
            json!("Etc/UTC"),
            json!("False"),
            json!(1),
            json!("5m"),
            json!("60m"),
            json!("b"),
            json!("backup:2"),
            json!("<none>")
        ]
    );
    let never = json!({"metadata": meta("n"), "spec": {"schedule": "@daily"}});
    assert_eq!(
        cells("batch", "CronJob", never)[2..6],
        [json!("<none>"), json!("<unset>"), json!(0), json!("<none>")]
    );
}

#[test]
fn config_maps_secrets_namespaces_and_service_accounts() {
    let cm =
        json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        cells("", "ConfigMap", cm),
        vec![json!("cfg"), json!(3), json!("60m")]
    );
    let secret = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells("", "Secret", secret),
        vec![
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("60m")
        ]
    );
    let ns = json!({"metadata": meta("prod"), "status": {"phase": "Terminating"}});
    assert_eq!(
        cells("", "Namespace", ns),
        vec![json!("prod"), json!("Terminating"), json!("60m")]
    );
    let sa = json!({"metadata": meta("default")});
    assert_eq!(
        cells("", "ServiceAccount", sa),
        vec![json!("default"), json!(0), json!("60m")]
    );
}

#[test]
fn nodes_show_status_roles_version_and_addresses() {
    let node = json!({
        "metadata": {"name": "cp-1", "creationTimestamp": "2024-04-28T07:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "", "kubernetes.io/role": "master"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "cp-1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "drover://0.1.0"},
        },
    });
    assert_eq!(
        cells("", "Node", node),
        vec![
            json!("cp-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,etcd,master"),
            json!("3d3h"),
            json!("v1.33.1"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("drover://0.1.0")
        ]
    );
    let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(
        cells("", "Node", bare)[1..3],
        [json!("NotReady"), json!("<none>")]
    );
}

#[test]
fn events_print_last_seen_object_source_and_count_in_both_apis() {
    let core = json!({
        "metadata": meta("web.17c3"),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-05-01T09:40:00Z", "lastTimestamp": "2024-05-01T09:59:00Z", "count": 7,
    });
    assert_eq!(
        cells("", "Event", core),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container"),
            json!("20m"),
            json!(7),
            json!("web.17c3")
        ]
    );
    let v1 = json!({
        "metadata": meta("web.17c4"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up replica set web-5d4f8c to 3",
        "reportingController": "deployment-controller", "eventTime": "2024-05-01T09:59:58.123456Z",
    });
    assert_eq!(
        cells("events.k8s.io", "Event", v1),
        vec![
            // 1.88s ago: Go truncates to whole seconds.
            json!("1s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-5d4f8c to 3"),
            json!("1s"),
            json!(1),
            json!("web.17c4")
        ]
    );
    let series = json!({
        "metadata": meta("s"), "involvedObject": {"kind": "Node"}, "eventTime": "2024-05-01T09:00:00Z",
        "series": {"count": 12, "lastObservedTime": "2024-05-01T09:59:30.000000Z"},
    });
    let c = cells("", "Event", series);
    assert_eq!(
        (&c[0], &c[3], &c[7], &c[8]),
        (&json!("30s"), &json!("node"), &json!("60m"), &json!(12))
    );
}

#[test]
fn networking_kinds() {
    let ing = json!({
        "metadata": meta("web"),
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                 "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}},
    });
    assert_eq!(
        cells("networking.k8s.io", "Ingress", ing),
        vec![
            json!("web"),
            json!("nginx"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("203.0.113.9"),
            json!("80, 443"),
            json!("60m")
        ]
    );
    let catch_all = json!({"metadata": meta("all"), "spec": {"rules": [{}]}});
    assert_eq!(
        cells("networking.k8s.io", "Ingress", catch_all)[1..5],
        [json!("<none>"), json!("*"), json!(""), json!("80")]
    );

    let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {}}});
    assert_eq!(cells("networking.k8s.io", "NetworkPolicy", np)[1], "<none>");
    let np = json!({"metadata": meta("db"), "spec": {"podSelector": {"matchExpressions": [{"key": "role", "operator": "Exists"}, {"key": "tmp", "operator": "DoesNotExist"}]}}});
    assert_eq!(
        cells("networking.k8s.io", "NetworkPolicy", np)[1],
        "role,!tmp"
    );

    let ic = json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        cells("networking.k8s.io", "IngressClass", ic)[1..3],
        [
            json!("k8s.io/ingress-nginx"),
            json!("IngressParameters.k8s.example.com/external-lb")
        ]
    );

    let ip = json!({"metadata": meta("10.96.0.10"), "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "kube-system", "name": "kube-dns"}}});
    assert_eq!(
        cells("networking.k8s.io", "IPAddress", ip)[1],
        "services/kube-system/kube-dns"
    );

    let eps = json!({
        "metadata": meta("web-abcde"), "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}, {"port": 9090}],
        "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}],
    });
    assert_eq!(
        cells("discovery.k8s.io", "EndpointSlice", eps)[1..4],
        [
            json!("IPv4"),
            json!("80,metrics,* + 1 more..."),
            json!("10.244.0.5,10.244.0.6")
        ]
    );
    let ep = json!({"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.244.0.5"}, {"ip": "fd00::6"}], "ports": [{"port": 8080}, {"port": 9090}]}]});
    assert_eq!(
        cells("", "Endpoints", ep)[1],
        "10.244.0.5:8080,[fd00::6]:8080,10.244.0.5:9090 + 1 more..."
    );
    assert_eq!(
        cells("", "Endpoints", json!({"metadata": meta("none")}))[1],
        "<none>"
    );
}

#[test]
fn storage_kinds() {
    let pvc = json!({
        "metadata": meta("data"),
        "spec": {"storageClassName": "standard", "volumeName": "pvc-1", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"]},
    });
    assert_eq!(
        cells("", "PersistentVolumeClaim", pvc),
        vec![
            json!("data"),
            json!("Bound"),
            json!("pvc-1"),
            json!("1Gi"),
            json!("RWO,RWOP"),
            json!("standard"),
            json!("<unset>"),
            json!("60m"),
            json!("<unset>")
        ]
    );
    let pending = json!({"metadata": meta("p"), "spec": {"resources": {"requests": {"storage": "5Gi"}}}, "status": {"phase": "Pending"}});
    assert_eq!(
        cells("", "PersistentVolumeClaim", pending)[1..6],
        [json!("Pending"), json!(""), json!(""), json!(""), json!("")]
    );

    let pv = json!({
        "metadata": meta("pvc-1"),
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                 "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"},
    });
    assert_eq!(
        cells("", "PersistentVolume", pv),
        vec![
            json!("pvc-1"),
            json!("1Gi"),
            json!("RWO,RWX"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data"),
            json!("standard"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Filesystem")
        ]
    );

    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells("storage.k8s.io", "StorageClass", sc)[..5],
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
    let drv = json!({"metadata": meta("csi.example.com"), "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    assert_eq!(
        cells("storage.k8s.io", "CSIDriver", drv)[1..7],
        [
            json!(true),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("Persistent,Ephemeral")
        ]
    );
}

#[test]
fn rbac_bindings_list_subjects_by_kind() {
    let rb = json!({
        "metadata": meta("admins"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "ops"},
            {"kind": "ServiceAccount", "namespace": "ci", "name": "deployer"},
        ],
    });
    assert_eq!(
        cells("rbac.authorization.k8s.io", "RoleBinding", rb.clone()),
        vec![
            json!("admins"),
            json!("ClusterRole/admin"),
            json!("60m"),
            json!("alice, bob"),
            json!("ops"),
            json!("ci/deployer")
        ]
    );
    assert_eq!(
        cells("rbac.authorization.k8s.io", "ClusterRoleBinding", rb)[1],
        "ClusterRole/admin"
    );
}

#[test]
fn autoscalers_and_disruption_budgets() {
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
            ],
        },
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "120m"}}},
        ]},
    });
    assert_eq!(
        cells("autoscaling", "HorizontalPodAutoscaler", hpa),
        vec![
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 45%/80%, memory: <unknown>/500Mi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
            json!("60m")
        ]
    );
    let v1 = json!({
        "apiVersion": "autoscaling/v1", "metadata": meta("old"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"}, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 1},
    });
    assert_eq!(
        cells("autoscaling", "HorizontalPodAutoscaler", v1)[2..4],
        [json!("cpu: <unknown>/50%"), json!("<unset>")]
    );

    let pdb = json!({"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells("policy", "PodDisruptionBudget", pdb),
        vec![
            json!("web"),
            json!("50%"),
            json!("N/A"),
            json!(1),
            json!("60m")
        ]
    );
}

#[test]
fn leases_csrs_api_services_and_flow_control() {
    let lease =
        json!({"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_5f2c"}});
    assert_eq!(cells("coordination.k8s.io", "Lease", lease)[1], "cp-1_5f2c");

    let csr = json!({"metadata": meta("node-csr"), "spec": {"signerName": "kubernetes.io/kubelet-serving", "username": "system:node:n1", "expirationSeconds": 86400},
                     "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    assert_eq!(
        cells("certificates.k8s.io", "CertificateSigningRequest", csr),
        vec![
            json!("node-csr"),
            json!("60m"),
            json!("kubernetes.io/kubelet-serving"),
            json!("system:node:n1"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );

    let local = json!({"metadata": meta("v1.apps"), "status": {"conditions": [{"type": "Available", "status": "True"}]}});
    assert_eq!(
        cells("apiregistration.k8s.io", "APIService", local)[1..3],
        [json!("Local"), json!("True")]
    );
    let remote = json!({"metadata": meta("v1beta1.metrics.k8s.io"), "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
                        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
    assert_eq!(
        cells("apiregistration.k8s.io", "APIService", remote)[1..3],
        [
            json!("kube-system/metrics-server"),
            json!("False (MissingEndpoints)")
        ]
    );

    let pl = json!({"metadata": meta("workload-low"), "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
        "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
    assert_eq!(
        cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            pl
        )[1..6],
        [
            json!("Limited"),
            json!(100),
            json!(128),
            json!(6),
            json!(50)
        ]
    );
    let exempt = json!({"metadata": meta("exempt"), "spec": {"type": "Exempt"}});
    assert_eq!(
        cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            exempt
        )[2],
        "<none>"
    );
}

#[test]
fn table_object_has_kubectls_shape_and_partial_metadata_rows() {
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name), "data": {"k": "v"}});
    let list_meta = json!({"resourceVersion": "1027", "continue": "tok"});
    let t = table(
        "",
        "ConfigMap",
        &[cm("a"), cm("b")],
        NOW,
        IncludeObject::Metadata,
        &list_meta,
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "1027", "continue": "tok"})
    );
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["rows"][1]["cells"], json!(["b", 1, "60m"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta("a")})
    );
    assert!(t["rows"][0].get("conditions").is_none());

    let full = table(
        "",
        "ConfigMap",
        &[cm("a")],
        NOW,
        IncludeObject::Object,
        &Value::Null,
    );
    assert_eq!(full["rows"][0]["object"], cm("a"));
    assert_eq!(full["metadata"], json!({}));
    let none = table(
        "",
        "ConfigMap",
        &[cm("a")],
        NOW,
        IncludeObject::None,
        &Value::Null,
    );
    assert_eq!(none["rows"][0]["object"], Value::Null);
    let empty = table::<Value>(
        "",
        "ConfigMap",
        &[],
        NOW,
        IncludeObject::Metadata,
        &Value::Null,
    );
    assert_eq!(empty["rows"], json!([]));

    assert_eq!(
        IncludeObject::parse("Object").unwrap(),
        IncludeObject::Object
    );
    assert_eq!(IncludeObject::parse("").unwrap(), IncludeObject::Metadata);
    assert!(IncludeObject::parse("Everything").is_err());
}

#[test]
fn flow_schema_lists_are_sorted_by_precedence_then_name() {
    let fs = |name: &str, precedence: i64| json!({"metadata": meta(name), "spec": {"matchingPrecedence": precedence, "priorityLevelConfiguration": {"name": "global-default"}}});
    let t = table(
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        &[
            fs("global-default", 9900),
            fs("exempt", 1),
            fs("catch-all", 10000),
            fs("b", 1),
        ],
        NOW,
        IncludeObject::None,
        &Value::Null,
    );
    let names: Vec<&str> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "exempt", "global-default", "catch-all"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["b", "global-default", 1, "<none>", "60m", "?"])
    );
}
