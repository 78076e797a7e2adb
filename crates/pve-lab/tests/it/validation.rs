//! Schema-driven parameter validation, table-driven with PVE's messages.

use crate::common::{Api, Params, start};

#[tokio::test]
async fn parameters_are_checked_against_the_schema() {
    let lab = start().await;
    let api = Api::token(&lab);
    // (method, path, params, parameter, PVE's message)
    let cases: &[(&str, &str, Params, &str, &str)] = &[
        (
            "GET",
            "/cluster/nextid",
            &[("bogus", "1")],
            "bogus",
            "property is not defined in schema and the schema does not allow additional properties",
        ),
        (
            "GET",
            "/cluster/nextid",
            &[("vmid", "abc")],
            "vmid",
            "type check ('integer') failed - got 'abc'",
        ),
        (
            "GET",
            "/cluster/nextid",
            &[("vmid", "99")],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        ),
        (
            "GET",
            "/cluster/nextid",
            &[("vmid", "1000000000")],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[],
            "newid",
            "property is missing and it is not optional",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150"), ("full", "true")],
            "full",
            "type check ('boolean') failed - got 'true'",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150"), ("format", "vhdx")],
            "format",
            "value 'vhdx' does not have a value in the enumeration 'raw', 'qcow2', 'vmdk'",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150"), ("name", "under_score")],
            "name",
            "invalid format - value 'under_score' does not look like a valid DNS name\n",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/resize",
            &[("disk", "scsi0"), ("size", "-8G")],
            "size",
            "value does not match the regex pattern",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("cores", "0")],
            "cores",
            "value must have a minimum value of 1",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("net32", "virtio,bridge=vmbr0")],
            "net32",
            "property is not defined in schema and the schema does not allow additional properties",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("ipconfig0", "ip=10.0.0.5")],
            "ipconfig0",
            "invalid format - format error\nip: invalid format - valid format for IPv4 config is 'dhcp' or 'CIDR'\n",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("net0", "virtio,colour=red")],
            "net0",
            "invalid format - invalid key in comma-separated list property: colour\n",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("delete", "net0,9bad")],
            "delete",
            "invalid format - invalid configuration ID '9bad'\n",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("sshkeys", "ssh-ed25519 AAAA")],
            "sshkeys",
            "invalid format - invalid urlencoded string: ssh-ed25519 AAAA\n",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/config",
            &[("tags", "ok;bad tag!")],
            "tags",
            "invalid format - invalid characters in tag 'tag!'\n",
        ),
        (
            "GET",
            "/nodes/lloyd/storage/local/content",
            &[("content", "movies")],
            "content",
            "invalid format - invalid content type 'movies'\n",
        ),
        (
            "GET",
            "/nodes/lloyd/tasks/UPID:x/log",
            &[("start", "-1")],
            "start",
            "value must have a minimum value of 0",
        ),
        (
            "GET",
            "/nodes/lloyd/qemu/99/config",
            &[],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        ),
        (
            "GET",
            "/nodes/-bad/qemu",
            &[],
            "node",
            "invalid format - value does not look like a valid node name\n",
        ),
    ];
    for (method, path, params, parameter, message) in cases {
        let reply = api.call(method, path, params).await;
        assert_eq!(
            reply.status, 400,
            "{method} {path} {params:?}: {}",
            reply.body
        );
        assert_eq!(reply.message(), "Parameter verification failed.\n");
        assert_eq!(
            reply.error(parameter),
            Some(*message),
            "{method} {path} {params:?}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn valid_parameters_pass_through_to_the_node() {
    let lab = start().await;
    let api = Api::token(&lab);
    let cases: &[(&str, &str, Params)] = &[
        ("GET", "/cluster/nextid", &[("vmid", "150")]),
        (
            "PUT",
            "/nodes/lloyd/qemu/1001/config",
            &[
                ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1"),
                ("ipconfig0", "ip=192.168.10.5/24,gw=192.168.10.1"),
                ("scsi0", "local-lvm:vm-1001-disk-0,discard=on,ssd=1"),
                ("boot", "order=scsi0;ide2;net0"),
                ("sshkeys", "ssh-ed25519%20AAAAC3Nza%2B%2F%3D%20me%40host"),
                ("tags", "jump;edge"),
                ("memory", "2048"),
                ("agent", "enabled=1"),
            ],
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/1001/resize",
            &[("disk", "scsi0"), ("size", "+8G")],
        ),
    ];
    for (method, path, params) in cases {
        let reply = api.call(method, path, params).await;
        assert_ne!(reply.status, 400, "{method} {path}: {}", reply.body);
        assert_ne!(reply.status, 501, "{method} {path}: {}", reply.body);
    }
}
